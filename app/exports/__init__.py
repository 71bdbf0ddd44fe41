"""CSV and XLSX exports of the lists, with the lists' own filters and role scoping."""
