"""Pure health-scoring code: takes and returns plain data and DataFrames, no ORM."""
