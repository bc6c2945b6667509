-- Not from the page: the objects the statements of generate_sql_page.sql name (the page's
-- examples use the BIRD "financial" data set and a my_schema of the reader's), small and
-- synthetic, so that each statement can run as printed.

CREATE EXTENSION alloydb_ai_nl cascade;

CREATE SCHEMA bird_dev_financial;
CREATE TABLE bird_dev_financial.district (
    district_id integer PRIMARY KEY, "A2" text, "A3" text, "A11" integer);
CREATE TABLE bird_dev_financial.account (
    account_id integer PRIMARY KEY, district_id integer REFERENCES bird_dev_financial.district,
    frequency text, date date);
CREATE TABLE bird_dev_financial.loan (
    loan_id integer PRIMARY KEY, account_id integer REFERENCES bird_dev_financial.account, amount integer);
CREATE TABLE bird_dev_financial.client (
    client_id integer PRIMARY KEY, birth_date date, district_id integer REFERENCES bird_dev_financial.district);
CREATE TABLE bird_dev_financial.disp (
    disp_id integer PRIMARY KEY, client_id integer REFERENCES bird_dev_financial.client,
    account_id integer REFERENCES bird_dev_financial.account);
CREATE TABLE bird_dev_financial.trans (
    trans_id integer PRIMARY KEY, account_id integer REFERENCES bird_dev_financial.account, balance integer);
INSERT INTO bird_dev_financial.district VALUES
    (1, 'Hl.m. Praha', 'Prague', 12541), (2, 'Slokolov', 'west Bohemia', 8110), (3, 'Hradec Kralove', 'east Bohemia', 8427);
INSERT INTO bird_dev_financial.account VALUES
    (1, 1, 'POPLATEK MESICNE', '1993-02-26'), (2, 3, 'POPLATEK PO OBRATU', '1993-08-21'),
    (3, 2, 'POPLATEK PO OBRATU', '1995-04-07');
INSERT INTO bird_dev_financial.loan VALUES (1, 1, 80952), (2, 2, 30276);
INSERT INTO bird_dev_financial.client VALUES (1, '1945-12-02', 2), (4, '1970-12-13', 1);
INSERT INTO bird_dev_financial.disp VALUES (1, 1, 3), (2, 4, 1);
INSERT INTO bird_dev_financial.trans VALUES (851, 1, 1000), (852, 2, 2400);

CREATE SCHEMA my_schema;
CREATE TABLE my_schema.my_table (id integer PRIMARY KEY, column1 text, seat_class text);
CREATE TABLE my_schema.country (country_id integer PRIMARY KEY, country_name text, population bigint);
INSERT INTO my_schema.my_table VALUES (1, 'E', 'E'), (2, 'B', 'B');
INSERT INTO my_schema.country VALUES (1, 'USA', 331000000), (2, 'Portugal', 10300000);
CREATE TABLE public.item (item_id integer PRIMARY KEY, item_name text);
CREATE TABLE public.person (person_id integer PRIMARY KEY, first_name text, middle_name text,
                            last_name text, ssn text, date_col date);
CREATE TABLE public.my_app_table (id integer PRIMARY KEY, city text);

-- The page's second template and its fragments name these tables without a schema.
SET search_path = public, bird_dev_financial;

-- A statement of the page applies the schema context of the tutorial's configuration.
SELECT alloydb_ai_nl.g_create_configuration('nla_demo_cfg');
