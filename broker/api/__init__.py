"""HTTP edge: Litestar controllers, schemas, access control and the problem-details error table."""
