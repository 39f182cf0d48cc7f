-- What each live profile may do right now: expired grants and deleted
-- profiles drop out. Services query this instead of joining four tables.
CREATE OR REPLACE VIEW effective_permissions AS
SELECT DISTINCT pr.profile_id, p.code AS permission
FROM profile_roles pr
JOIN profiles pf ON pf.id = pr.profile_id AND pf.deleted_at IS NULL
JOIN role_permissions rp ON rp.role_id = pr.role_id
JOIN permissions p ON p.id = rp.permission_id
WHERE pr.expires_at IS NULL OR pr.expires_at > now();
