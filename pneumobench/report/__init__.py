"""What people read: the leaderboard (rows, ranking, renderers), every figure, and the HTML /
Markdown report."""
