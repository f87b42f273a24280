"""moocard's benchmark history: run the suite, keep every sample, compare commits, draw the page.

Standard library only, so a fresh machine needs no pip install to read or plot the history.
"""
