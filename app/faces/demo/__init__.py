"""`sopbot demo`: the service, its built-in WeCom simulator and a synthetic population in one
process. population.py (who and their fates), workspace.py (demo/ and the settings), wire.py
(how the demo reaches the service), groundwork.py and driver.py (the operators' set-up and the
funnel), calendar_days.py (the fast-forwarded calendar), summary.py and output.py (what it
prints), phases.py and run.py (the order of it all), cli.py (the command)."""
