-- TPC-H Q6: forecasting revenue change (DATE = 1994-01-01, DISCOUNT = 0.06, QUANTITY = 24)
-- The spec's range 0.06 - 0.01 .. 0.06 + 0.01 is written out as 0.05 .. 0.07: l_discount is
-- float64 here, and an engine that reads the literals as float64 (DataFusion does) computes
-- 0.06 + 0.01 as 0.06999..., which would drop every row with a discount of 0.07.
select
    sum(l_extendedprice * l_discount) as revenue
from
    lineitem
where
    l_shipdate >= date '1994-01-01'
    and l_shipdate < date '1994-01-01' + interval '1' year
    and l_discount between 0.05 and 0.07
    and l_quantity < 24
