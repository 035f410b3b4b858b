-- When a person last pressed Retry on an undelivered DM: manual retries are
-- limited to one a minute per DM, so a script cannot spend the sender's
-- (or the shared notifier's) chat rate limit through the retry button.
ALTER TABLE outbox ADD COLUMN retried_at BIGINT NOT NULL DEFAULT 0;
