"""Reading a sheet losslessly and checking it: loading, columns, IDs, emails, reports as input."""
