"""Credits service: attendance copy, analyses, credit awards, trainee accounts, yearly compliance."""
