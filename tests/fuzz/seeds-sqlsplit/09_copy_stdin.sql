COPY t (a, b) FROM stdin;
1	2
\.
