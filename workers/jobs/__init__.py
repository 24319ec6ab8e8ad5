"""Jobs: each opens one session scope, calls one service and returns; all may run twice."""
