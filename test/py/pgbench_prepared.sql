\set n random(1, 5)
SELECT cachier_wrap('geocode', :n);
SELECT geocode_cached(:n);
SELECT cachier_precache('geocode', '(0,0)', :n);
SELECT cachier_clear('geocode', :n);
