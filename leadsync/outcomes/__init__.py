"""Closing the loop: outcomes read from where sales records them, never written there.

Sales moves a lead along in its own tool: a status typed into the sheet's
`outcome_column` (`sheets.py`), a HubSpot contact's lifecycle stage
(`hubspot.py`), or an outcome posted to `POST /events`. Each reader turns what
it finds into `LeadStage`s (contacted, sql, won, lost, with the time first
seen and an optional deal value) that the store keeps once per lead and
stage. `job.py` runs one reader per source on the scheduler, under a lease so
that one replica reads a source at a time; `values.py` maps what people type
to stages and reads deal values.
"""
