"""The leaderboard's output formats: a plain constant, so that the command line lists them
without importing the statistics stack."""

FORMATS = ("table", "json", "csv", "markdown")
