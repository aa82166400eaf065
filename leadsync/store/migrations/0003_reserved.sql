-- Reserved: migration 0003 is lead stages and outcomes, made on another branch at the same
-- time as 0004. This placeholder keeps the numbers 1..n on the routing branch; the merge
-- replaces it with the real 0003 (migrations() refuses two files of one number).
SELECT 1;
