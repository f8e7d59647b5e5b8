-- 016: feed credentials out of everything but the feed's own URL.
--
-- * news.public_url() hid user information only up to the first '@': a password holding
--   '@' (http://alice:p@ss@host/feed) showed its tail in news_api.feeds and feed_status.
--   The authority ends at the first '/', '?' or '#', so everything before its last '@'
--   is user information (a raw '@' in a password is not valid, but feeds files carry it).
-- * Before this release, links resolved against a feed URL with credentials inherited
--   them (a relative <link>/page/1</link> became http://alice:Secret@host/page/1), and were
--   stored in entries, articles and story outlets. Newer code strips user information at the
--   validation boundary; the rows stored before are cleaned here. A cleaned canonical URL
--   that another article already holds is left for an operator (`newsflow purge --url`):
--   the UNIQUE key decides which copy is kept, not a migration.

CREATE OR REPLACE FUNCTION news.public_url(url text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN regexp_replace(url, '^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@', '\1***@');

CREATE FUNCTION news.without_userinfo(url text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN regexp_replace(url, '^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@', '\1');
COMMENT ON FUNCTION news.without_userinfo(text) IS
    'The URL without user information (user:password@); used once by migration 016.';

UPDATE news.entries SET link = news.without_userinfo(link)
WHERE link ~ '^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*@';

UPDATE news.articles a SET url = news.without_userinfo(a.url)
WHERE a.url ~ '^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*@';

UPDATE news.articles a SET canonical_url = news.without_userinfo(a.canonical_url)
WHERE a.canonical_url ~ '^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*@'
  AND NOT EXISTS (SELECT 1 FROM news.articles b WHERE b.canonical_url = news.without_userinfo(a.canonical_url));

-- site_name fell back to the URL's network location (user:password@host) when a page named none
UPDATE news.articles SET site_name = regexp_replace(site_name, '^[^/?#\s]*@', '')
WHERE site_name ~ '^[^/?#\s]*:[^/?#\s]*@';

UPDATE news.story_outlets SET url = news.without_userinfo(url)
WHERE url ~ '^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*@';
