"""Scoring at the desk: the `leadsync score` and `leadsync calibrate` commands and their files.

`offline` scores a CSV of leads, `calibrate` compares scores with closed deals,
`threshold` suggests an MQL threshold, `report` and `charts` render the tables and
the HTML report, and `cli` reads the config, the files and (for calibrate) the
store. The scoring itself is `leadsync.scoring`'s pure engine; this package is the
I/O around it, so the engine never depends on files, the store or the config.
"""
