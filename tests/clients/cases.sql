-- Compatibility cases for psql: run once straight to the database and once through
-- pgtether; the two transcripts must be equal.
\set ON_ERROR_STOP 0
\pset pager off
select 1 as one, 'two'::text as two, null::int as three;
select g, md5(g::text) from generate_series(1, 5) g;
create table app.t (id int primary key, name text, amount numeric(10,2));
insert into app.t values (1, 'a', 1.50), (2, 'b', 2.25), (3, 'c', null);
update app.t set amount = 9 where id = 3;
delete from app.t where id = 2;
select * from app.t order by id;
\d app.t
begin;
insert into app.t values (4, 'd', 4);
savepoint s1;
insert into app.t values (4, 'dup', 0);
rollback to savepoint s1;
commit;
select count(*) from app.t;
select 1/0;
select no_such_column from app.t;
do $$ begin raise notice 'a notice with %', 42; end $$;
do $$ begin raise warning 'a warning'; end $$;
select 'multi' as a; select 'statement' as b;
\copy app.t to stdout
\copy app.t (id, name) from stdin
10	ten
11	eleven
\.
select id, name from app.t where id >= 10 order by id;
prepare p(int) as select name from app.t where id = $1;
execute p(1);
deallocate p;
select '{"a": [1, 2, {"b": null}]}'::jsonb -> 'a' as j, array[1,2,3] as arr, '\x00ff'::bytea as b;
select set_config('app.setting', 'value', false);
show app.setting;
listen chan;
notify chan, 'payload';
select pg_sleep(0.1);
drop table app.t;
