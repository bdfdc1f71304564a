"""授分: attendance analyses saved by 确定, 筛选授分人员 exclusions and the credit awards themselves."""
