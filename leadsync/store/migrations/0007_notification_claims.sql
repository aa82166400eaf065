-- Each notification is fetched by one replica (issue 16): a fetch round claims the ones it
-- takes (claimed_by, claimed_until), as delivery claims outbox items, so replicas sharing one
-- database never ask Graph for the same lead. Storing, dropping or deferring the notification
-- ends the claim; a claim whose round never ended (its process died) expires and is taken
-- again. Written once for both backends; notifications_pending (0001) serves the claim.
ALTER TABLE notifications ADD COLUMN claimed_by text;
ALTER TABLE notifications ADD COLUMN claimed_until {time};
