"""Votes -> tags / report: finding a library's files (:mod:`.library`), reading and writing
genre tags (:mod:`.tags`), the journal of writes and undo (:mod:`.journal`), the scan
itself (:mod:`.scan`) and its CSV report (:mod:`.report`)."""
