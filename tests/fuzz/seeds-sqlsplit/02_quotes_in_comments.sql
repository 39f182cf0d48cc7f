-- it's a comment; with "quotes" and $$
SELECT 'a;b', 'it''s', "id;""x" /* don't ; */;
