"""Reading run folders back: reports, the run table, comparisons, success criteria."""
