-- Reverses V4.
DROP TABLE oauth_links;
