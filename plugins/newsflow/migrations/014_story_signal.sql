-- 014: the evidence that placed an article in its story, next to its scores.
-- story_jaccard / story_containment say how similar the text is to the story's
-- representative; they no longer say alone why it joined: a credited aggregator excerpt
-- ("Via Reuters", "(AP) -") joins on a verbatim quoted passage below the copy thresholds.
-- story_signal: 'containment' | 'jaccard' | 'small_text_jaccard' | 'credited_quote'
-- (NULL: the story's first member, or placed before this migration);
-- story_signal_value: the value of that signal (containment, Jaccard, or the quoted run
-- in shingles).
ALTER TABLE news.articles
    ADD COLUMN IF NOT EXISTS story_signal text,
    ADD COLUMN IF NOT EXISTS story_signal_value real;
