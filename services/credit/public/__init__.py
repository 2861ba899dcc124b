"""Change feeds of credit's public lists: the dishonesty list (失信名单) and published
evaluations (评价结果), served as `?since=` on `/public/dishonesty-list` and
`/public/evaluations`."""
