"""达标情况查询: a trainee's credits per year against the configured yearly requirement."""
