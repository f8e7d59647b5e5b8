-- 003: every outlet that carried a story, including byte-identical copies.
-- An identical body published by two outlets is one row of news.articles (exact dedup);
-- the second outlet is known only through its feed entry. This view puts both back in
-- the story, so "who carried this story" has one answer for analysts and the demo.

CREATE VIEW news.story_outlets AS
SELECT DISTINCT ON (a.story_id, f.publisher)
       a.story_id,
       f.publisher,
       a.id                        AS article_id,
       CASE WHEN f.publisher = a.publisher THEN a.story_relation
            ELSE 'identical' END   AS relation,   -- 'identical': same text as the article of another outlet
       e.link                      AS url,
       coalesce(e.published_at, a.published_at) AS published_at
FROM news.articles a
JOIN news.entries e ON e.article_id = a.id
JOIN news.feeds f   ON f.id = e.feed_id
ORDER BY a.story_id, f.publisher, (f.publisher = a.publisher) DESC,
         coalesce(e.published_at, a.published_at), e.id;

COMMENT ON VIEW news.story_outlets IS
    'One row per (story, outlet): the outlets that carried each story, identical copies included.';
