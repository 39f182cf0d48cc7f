CREATE FUNCTION f() RETURNS int AS $fn$
BEGIN
  EXECUTE $$SELECT $x$ ; $x$$$;
  RETURN $1;
END $fn$ LANGUAGE plpgsql;
SELECT a$b$, $1, $$$$;
