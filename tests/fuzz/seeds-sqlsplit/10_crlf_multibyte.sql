SELECT 'café';
SELECT '日本';SELECT 3
