-- The closed-loop report reads the leads created since a moment (store/reporting.py);
-- leads_form (form_id, created_time) cannot serve a window over every form.
CREATE INDEX IF NOT EXISTS leads_created ON leads (created_time);
