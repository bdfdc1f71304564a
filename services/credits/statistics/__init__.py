"""年度统计: the committee's figures of a year, by institution, and how many trainees met the requirement."""
