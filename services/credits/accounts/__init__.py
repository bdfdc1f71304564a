"""Trainee accounts (学员账号): username = the ID number, initial password = the pinyin of the name."""
