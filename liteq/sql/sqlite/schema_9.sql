-- reserved: filled by another change
SELECT 1;
