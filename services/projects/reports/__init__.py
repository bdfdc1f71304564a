"""执行情况反馈 (ExecutionReport): the post-event report of an offering, its five pages and its review."""
