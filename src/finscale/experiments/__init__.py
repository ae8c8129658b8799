"""The experiment matrix: phases as data (config), expanded to jobs with run identities
(matrix), counted and timed before they start (plan), checked against MLflow (status) and
run in order, studies before the final runs that use them (run)."""
