-- The "Delete the objects" statements of the same page, as printed, in order.

SELECT alloydb_ai_nl.drop_template(id)
FROM alloydb_ai_nl.template_store_view
WHERE config = 'nla_demo_cfg';

SELECT alloydb_ai_nl.drop_generated_concept_type_association(id)
FROM alloydb_ai_nl.generated_value_index_columns_view
WHERE config = 'nla_demo_cfg';

SELECT alloydb_ai_nl.drop_concept_type('product_name');

SELECT alloydb_ai_nl.refresh_value_index();

SELECT
alloydb_ai_nl.g_manage_configuration(
    'drop_configuration',
    'nla_demo_cfg'
);

DROP SCHEMA nla_demo CASCADE;
