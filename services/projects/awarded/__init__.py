"""Projects' copy of each offering's award list (event credits.granted), for the execution report's 导入."""
