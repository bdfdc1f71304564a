"""微信扫码签到 on the trainee's phone: the QR URL, WeChat login, the form or one tap (views, services, templates)."""
