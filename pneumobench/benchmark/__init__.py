"""The benchmark protocol: training, search, tracking, final evaluation and leaderboard."""
