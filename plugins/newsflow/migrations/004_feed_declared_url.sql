-- 004: remember the URL a feed was declared with.
-- A permanent redirect (301/308) moves news.feeds.url; without the declared URL, the
-- next sync of the feeds file would not recognise the moved feed and would add its old
-- URL again as a second feed. NULL means "declared with its current url".

ALTER TABLE news.feeds ADD COLUMN declared_url text;
CREATE UNIQUE INDEX feeds_declared_url_key ON news.feeds ((coalesce(declared_url, url)));
