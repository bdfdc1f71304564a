"""学分证书可打印通知: the SMS that tells a trainee their certificates can now be exported (guide §五)."""
