-- Reverses V5.
DROP INDEX refresh_tokens_replaced_by_idx;
DROP INDEX refresh_tokens_session_id_idx;
DROP INDEX sessions_live_expires_at_idx;
DROP INDEX sessions_user_id_idx;
