"""The closed-loop report: from leads and their sales stages to figures per form, campaign,
ad or owner, checked against the MQL definition guide's bands (`leadsync report`, `/report`)."""
