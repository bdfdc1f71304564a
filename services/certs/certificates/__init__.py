"""学分证书: issue (a number per effective award), render (one WeasyPrint document per batch, each page kept as an
immutable single-page PDF), export jobs for trainees and institutions, public verification and the committee's
look-up."""
