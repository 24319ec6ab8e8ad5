"""workshops, machines, capacities, catalogue (seeded), requests, invitations, quotes, orders

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 12:43:08.212379
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import broker.db.base

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


# The seeded catalogue: open designs with their bill of process (minutes per unit are measured
# figures from makers' published build notes, rounded).
CATALOGUE = [
    {
        "slug": "france-services-desk",
        "name": "Bureau d'accueil France Services",
        "description": "Poste de travail du conseiller numérique : plateau 1400 × 700 mm et piètement en contreplaqué "
        "de bouleau 18 mm usiné à la fraiseuse numérique, assemblage sans quincaillerie, passe-câbles, "
        "tablette PMR à 750 mm.",
        "licence": "CC BY-SA 4.0",
        "steps": [
            {"process": "cnc_routing", "material": "birch_plywood", "thickness_mm": 18.0,
             "part_size_mm": [1400.0, 700.0, 18.0], "minutes_per_unit": 55.0},
            {"process": "finishing", "material": "birch_plywood", "thickness_mm": 18.0,
             "part_size_mm": [1400.0, 700.0, 18.0], "minutes_per_unit": 40.0},
            {"process": "assembly", "material": "birch_plywood", "thickness_mm": 18.0,
             "part_size_mm": [1400.0, 750.0, 750.0], "minutes_per_unit": 30.0},
        ],
        "certifications_required": [],
        "files": ["plans/france-services-desk.dxf", "notice/france-services-desk-montage.pdf"],
    },
    {
        "slug": "monitor-stand",
        "name": "Réhausse d'écran",
        "description": "Support d'écran en contreplaqué de bouleau 18 mm (550 × 250 mm, hauteur 120 mm) pour poste "
        "d'accueil ; usinage CNC, finition vernis à l'eau.",
        "licence": "CC BY-SA 4.0",
        "steps": [
            {"process": "cnc_routing", "material": "birch_plywood", "thickness_mm": 18.0,
             "part_size_mm": [550.0, 250.0, 18.0], "minutes_per_unit": 12.0},
            {"process": "finishing", "material": "birch_plywood", "thickness_mm": 18.0,
             "part_size_mm": [550.0, 250.0, 18.0], "minutes_per_unit": 8.0},
            {"process": "assembly", "material": "birch_plywood", "thickness_mm": 18.0,
             "part_size_mm": [550.0, 250.0, 120.0], "minutes_per_unit": 5.0},
        ],
        "certifications_required": [],
        "files": ["plans/monitor-stand.dxf"],
    },
    {
        "slug": "face-visor",
        "name": "Visière de protection",
        "description": "Écran en PETG 0,5 mm découpé au laser (300 × 240 mm) et serre-tête imprimé en PLA (modèle RC3), "
        "assemblés par quatre ergots ; lavable et réutilisable.",
        "licence": "CC BY-NC 4.0",
        "steps": [
            {"process": "laser_cutting", "material": "petg", "thickness_mm": 0.5,
             "part_size_mm": [300.0, 240.0, 0.5], "minutes_per_unit": 1.5},
            {"process": "fdm_printing", "material": "pla", "thickness_mm": 2.0,
             "part_size_mm": [170.0, 100.0, 20.0], "minutes_per_unit": 45.0},
            {"process": "assembly", "material": "petg", "thickness_mm": 0.5,
             "part_size_mm": [300.0, 240.0, 100.0], "minutes_per_unit": 1.0},
        ],
        "certifications_required": [],
        "files": ["stl/visor-headband-rc3.stl", "dxf/visor-shield-300x240.dxf"],
    },
    {
        "slug": "uns1-mask",
        "name": "Masque barrière UNS1 (AFNOR Spec S76-001)",
        "description": "Masque en tissu à usage non sanitaire catégorie 1, deux couches de coton, élastiques, conforme "
        "au référentiel AFNOR Spec S76-001 ; lavable 5 fois au moins.",
        "licence": "Patron AFNOR Spec S76-001 (libre)",
        "steps": [
            {"process": "sewing", "material": "cotton", "thickness_mm": 1.0,
             "part_size_mm": [200.0, 100.0, 2.0], "minutes_per_unit": 12.0},
        ],
        "certifications_required": ["afnor-spec-s76-001"],
        "files": ["patrons/afnor-s76-001-masque-a-plis.pdf"],
    },
    {
        "slug": "door-opener",
        "name": "Ouvre-porte sans contact",
        "description": "Crochet imprimé en PETG qui se visse sur une poignée de porte (diamètre 19 à 22 mm) pour ouvrir "
        "sans la main.",
        "licence": "CC BY 4.0",
        "steps": [
            {"process": "fdm_printing", "material": "petg", "thickness_mm": 5.0,
             "part_size_mm": [110.0, 40.0, 15.0], "minutes_per_unit": 35.0},
        ],
        "certifications_required": [],
        "files": ["stl/hands-free-door-opener.stl"],
    },
    {
        "slug": "epi-storage-cabinet",
        "name": "Armoire de stockage des EPI",
        "description": "Armoire 900 × 600 × 1800 mm en contreplaqué de bouleau 18 mm pour stocker masques et "
        "visières au plus près des soignants ; usinage CNC et assemblage par tourillons.",
        "licence": "CC BY-SA 4.0",
        "steps": [
            {"process": "cnc_routing", "material": "birch_plywood", "thickness_mm": 18.0,
             "part_size_mm": [1800.0, 600.0, 18.0], "minutes_per_unit": 70.0},
            {"process": "assembly", "material": "birch_plywood", "thickness_mm": 18.0,
             "part_size_mm": [1800.0, 900.0, 600.0], "minutes_per_unit": 45.0},
        ],
        "certifications_required": [],
        "files": ["plans/armoire-epi.dxf"],
    },
]


def upgrade() -> None:
    op.create_table('catalogue_item',
    sa.Column('slug', sa.String(length=60), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('licence', sa.String(length=100), nullable=False),
    sa.Column('steps', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('certifications_required', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('files', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('created_at', broker.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('slug', name=op.f('pk_catalogue_item'))
    )
    op.create_table('fab_request',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('org_id', sa.String(length=36), nullable=False),
    sa.Column('item_slug', sa.String(length=60), nullable=True),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('steps', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('certifications_required', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('deadline', broker.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('delivery_insee', sa.String(length=5), nullable=False),
    sa.Column('delivery_address', sa.String(length=300), nullable=False),
    sa.Column('delivery_lat', sa.Float(), nullable=False),
    sa.Column('delivery_lon', sa.Float(), nullable=False),
    sa.Column('budget_cents', sa.BigInteger(), nullable=True),
    sa.Column('min_quotes', sa.Integer(), nullable=False),
    sa.Column('quote_window_hours', sa.Integer(), nullable=False),
    sa.Column('quote_deadline', broker.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('window_closed', sa.Boolean(), nullable=False),
    sa.Column('allow_split', sa.Boolean(), nullable=False),
    sa.Column('max_distance_km', sa.Float(), nullable=True),
    sa.Column('procurement', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('match_state', sa.String(length=10), nullable=False),
    sa.Column('match_result', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=True),
    sa.Column('award_justification', sa.Text(), nullable=True),
    sa.Column('created_at', broker.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', broker.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organization.id'], name=op.f('fk_fab_request_org_id_organization')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fab_request'))
    )
    with op.batch_alter_table('fab_request', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_fab_request_org_id'), ['org_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_fab_request_quote_deadline'), ['quote_deadline'], unique=False)
        batch_op.create_index(batch_op.f('ix_fab_request_status'), ['status'], unique=False)

    op.create_table('workshop',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('org_id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('commune_insee', sa.String(length=5), nullable=False),
    sa.Column('lat', sa.Float(), nullable=False),
    sa.Column('lon', sa.Float(), nullable=False),
    sa.Column('delivery_radius_km', sa.Float(), nullable=False),
    sa.Column('trades', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('labels', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('certifications', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('verified_labels', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('verified_certifications', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('paused', sa.Boolean(), nullable=False),
    sa.Column('reserved_units', sa.Integer(), nullable=False),
    sa.Column('orders_delivered', sa.Integer(), nullable=False),
    sa.Column('orders_on_time', sa.Integer(), nullable=False),
    sa.Column('recent_wins', sa.Integer(), nullable=False),
    sa.Column('created_at', broker.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', broker.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organization.id'], name=op.f('fk_workshop_org_id_organization')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_workshop')),
    sa.UniqueConstraint('org_id', name=op.f('uq_workshop_org_id'))
    )
    op.create_table('invitation',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('request_id', sa.String(length=36), nullable=False),
    sa.Column('workshop_id', sa.String(length=36), nullable=False),
    sa.Column('rank', sa.Integer(), nullable=False),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('distance_km', sa.Float(), nullable=False),
    sa.Column('capacity_units', sa.Integer(), nullable=False),
    sa.Column('reasons', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('decline_reason', sa.Text(), nullable=True),
    sa.Column('created_at', broker.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['request_id'], ['fab_request.id'], name=op.f('fk_invitation_request_id_fab_request')),
    sa.ForeignKeyConstraint(['workshop_id'], ['workshop.id'], name=op.f('fk_invitation_workshop_id_workshop')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invitation')),
    sa.UniqueConstraint('request_id', 'workshop_id', name=op.f('uq_invitation_request_id_workshop_id'))
    )
    with op.batch_alter_table('invitation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_invitation_request_id'), ['request_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_invitation_workshop_id'), ['workshop_id'], unique=False)

    op.create_table('machine',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('workshop_id', sa.String(length=36), nullable=False),
    sa.Column('process', sa.String(length=40), nullable=False),
    sa.Column('envelope_mm', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('materials', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('hours_per_week', sa.Float(), nullable=False),
    sa.Column('created_at', broker.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['workshop_id'], ['workshop.id'], name=op.f('fk_machine_workshop_id_workshop')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_machine'))
    )
    with op.batch_alter_table('machine', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_machine_workshop_id'), ['workshop_id'], unique=False)

    op.create_table('quote',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('request_id', sa.String(length=36), nullable=False),
    sa.Column('workshop_id', sa.String(length=36), nullable=False),
    sa.Column('unit_price_cents', sa.BigInteger(), nullable=False),
    sa.Column('vat_rate_bp', sa.Integer(), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('delivery_date', sa.Date(), nullable=False),
    sa.Column('valid_until', broker.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('created_at', broker.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['request_id'], ['fab_request.id'], name=op.f('fk_quote_request_id_fab_request')),
    sa.ForeignKeyConstraint(['workshop_id'], ['workshop.id'], name=op.f('fk_quote_workshop_id_workshop')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quote'))
    )
    with op.batch_alter_table('quote', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_quote_request_id'), ['request_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_quote_workshop_id'), ['workshop_id'], unique=False)

    op.create_table('workshop_capacity',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('workshop_id', sa.String(length=36), nullable=False),
    sa.Column('item_slug', sa.String(length=60), nullable=False),
    sa.Column('units_per_day', sa.Float(), nullable=False),
    sa.Column('updated_at', broker.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['item_slug'], ['catalogue_item.slug'], name=op.f('fk_workshop_capacity_item_slug_catalogue_item')),
    sa.ForeignKeyConstraint(['workshop_id'], ['workshop.id'], name=op.f('fk_workshop_capacity_workshop_id_workshop')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_workshop_capacity')),
    sa.UniqueConstraint('workshop_id', 'item_slug', name=op.f('uq_workshop_capacity_workshop_id_item_slug'))
    )
    with op.batch_alter_table('workshop_capacity', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_workshop_capacity_workshop_id'), ['workshop_id'], unique=False)

    op.create_table('fab_order',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('number', sa.String(length=30), nullable=False),
    sa.Column('request_id', sa.String(length=36), nullable=False),
    sa.Column('quote_id', sa.String(length=36), nullable=False),
    sa.Column('buyer_org_id', sa.String(length=36), nullable=False),
    sa.Column('workshop_id', sa.String(length=36), nullable=False),
    sa.Column('maker_org_id', sa.String(length=36), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('unit_price_cents', sa.BigInteger(), nullable=False),
    sa.Column('vat_rate_bp', sa.Integer(), nullable=False),
    sa.Column('delivery_date', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('units_done', sa.Integer(), nullable=False),
    sa.Column('tracking', sa.String(length=200), nullable=True),
    sa.Column('late', sa.Boolean(), nullable=False),
    sa.Column('created_at', broker.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', broker.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['quote_id'], ['quote.id'], name=op.f('fk_fab_order_quote_id_quote')),
    sa.ForeignKeyConstraint(['request_id'], ['fab_request.id'], name=op.f('fk_fab_order_request_id_fab_request')),
    sa.ForeignKeyConstraint(['workshop_id'], ['workshop.id'], name=op.f('fk_fab_order_workshop_id_workshop')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fab_order')),
    sa.UniqueConstraint('number', name=op.f('uq_fab_order_number')),
    sa.UniqueConstraint('quote_id', name=op.f('uq_fab_order_quote_id'))
    )
    with op.batch_alter_table('fab_order', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_fab_order_buyer_org_id'), ['buyer_org_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_fab_order_maker_org_id'), ['maker_org_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_fab_order_request_id'), ['request_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_fab_order_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_fab_order_workshop_id'), ['workshop_id'], unique=False)

    op.create_table('order_event',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('order_id', sa.String(length=36), nullable=False),
    sa.Column('at', broker.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('from_status', sa.String(length=20), nullable=True),
    sa.Column('to_status', sa.String(length=20), nullable=True),
    sa.Column('units_done', sa.Integer(), nullable=True),
    sa.Column('actor_org_id', sa.String(length=36), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['order_id'], ['fab_order.id'], name=op.f('fk_order_event_order_id_fab_order')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_order_event'))
    )
    with op.batch_alter_table('order_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_order_event_order_id'), ['order_id'], unique=False)


    catalogue = sa.table(
        "catalogue_item",
        sa.column("slug", sa.String), sa.column("name", sa.String), sa.column("description", sa.Text),
        sa.column("licence", sa.String), sa.column("steps", sa.JSON), sa.column("certifications_required", sa.JSON),
        sa.column("files", sa.JSON), sa.column("created_at", broker.db.base.UTCDateTime()),
    )
    seeded_at = datetime(2026, 11, 26, tzinfo=UTC)
    op.bulk_insert(catalogue, [{**item, "created_at": seeded_at} for item in CATALOGUE])


def downgrade() -> None:
    with op.batch_alter_table('order_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_order_event_order_id'))

    op.drop_table('order_event')
    with op.batch_alter_table('fab_order', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_fab_order_workshop_id'))
        batch_op.drop_index(batch_op.f('ix_fab_order_status'))
        batch_op.drop_index(batch_op.f('ix_fab_order_request_id'))
        batch_op.drop_index(batch_op.f('ix_fab_order_maker_org_id'))
        batch_op.drop_index(batch_op.f('ix_fab_order_buyer_org_id'))

    op.drop_table('fab_order')
    with op.batch_alter_table('workshop_capacity', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_workshop_capacity_workshop_id'))

    op.drop_table('workshop_capacity')
    with op.batch_alter_table('quote', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_quote_workshop_id'))
        batch_op.drop_index(batch_op.f('ix_quote_request_id'))

    op.drop_table('quote')
    with op.batch_alter_table('machine', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_machine_workshop_id'))

    op.drop_table('machine')
    with op.batch_alter_table('invitation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_invitation_workshop_id'))
        batch_op.drop_index(batch_op.f('ix_invitation_request_id'))

    op.drop_table('invitation')
    op.drop_table('workshop')
    with op.batch_alter_table('fab_request', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_fab_request_status'))
        batch_op.drop_index(batch_op.f('ix_fab_request_quote_deadline'))
        batch_op.drop_index(batch_op.f('ix_fab_request_org_id'))

    op.drop_table('fab_request')
    op.drop_table('catalogue_item')
