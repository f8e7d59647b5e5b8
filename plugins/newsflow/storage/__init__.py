"""All SQL of the project, one module per table family (in the manner of Miniflux's
``internal/storage``): feeds, entries, articles and stories, the dedup index, the
fetch log.  Functions take an open psycopg connection and never commit: the caller
owns the transaction, so a stage's writes land together or not at all."""
