-- Placeholder for the 0005 migration of a branch merged alongside this one (migrations are
-- numbered 1..n). When that 0005 arrives, delete this file: the loader then refuses two
-- files numbered 5, so the merge cannot keep both.
SELECT 1;
