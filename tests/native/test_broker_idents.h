/* test_broker_idents.h - synthetic client identities for the policy and identity suites:
 * two users in two sessions, an elevated and an unelevated administrator (Administrators
 * enabled / deny-only), SYSTEM in session 0, and a guest. Header-only (static data). */
#ifndef AIPC_TEST_BROKER_IDENTS_H
#define AIPC_TEST_BROKER_IDENTS_H

#include "broker.h"

#define SID_ALICE "S-1-5-21-100-200-300-1001"
#define SID_BOB   "S-1-5-21-100-200-300-1002"
#define SID_ADMIN "S-1-5-21-100-200-300-500"
#define SID_GUEST "S-1-5-21-100-200-300-501"
#define SID_SYSTEM "S-1-5-18"
#define SID_BA "S-1-5-32-544"
#define SID_BU "S-1-5-32-545"
#define SID_BG "S-1-5-32-546"
#define SID_AU "S-1-5-11"
#define SID_IU "S-1-5-4"
#define SID_WD "S-1-1-0"
#define SID_TEAM "S-1-5-21-100-200-300-3000"   /* a domain group alice is in */

static const aipc_identity_group g_alice[] = {
    {SID_WD, 0}, {SID_BU, 0}, {SID_IU, 0}, {SID_AU, 0}, {SID_TEAM, 0}};
static const aipc_identity_group g_bob[] = {{SID_WD, 0}, {SID_BU, 0}, {SID_IU, 0}, {SID_AU, 0}};
static const aipc_identity_group g_admin_elev[] = {
    {SID_WD, 0}, {SID_BA, 0}, {SID_BU, 0}, {SID_IU, 0}, {SID_AU, 0}};
static const aipc_identity_group g_admin_filtered[] = {
    {SID_WD, 0}, {SID_BA, 1}, {SID_BU, 0}, {SID_IU, 0}, {SID_AU, 0}};
static const aipc_identity_group g_system[] = {{SID_WD, 0}, {SID_BA, 0}, {SID_AU, 0}};
static const aipc_identity_group g_guest[] = {{SID_WD, 0}, {SID_BG, 0}, {SID_IU, 0}};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static const aipc_identity id_alice = {SID_ALICE, 1, 0x2000, g_alice, N_OF(g_alice)};
static const aipc_identity id_alice_s2 = {SID_ALICE, 2, 0x2000, g_alice, N_OF(g_alice)};
static const aipc_identity id_bob = {SID_BOB, 2, 0x2000, g_bob, N_OF(g_bob)};
static const aipc_identity id_admin = {SID_ADMIN, 1, 0x3000, g_admin_elev, N_OF(g_admin_elev)};
static const aipc_identity id_admin_ua = {SID_ADMIN, 1, 0x2000, g_admin_filtered,
                                          N_OF(g_admin_filtered)};
static const aipc_identity id_system = {SID_SYSTEM, 0, 0x4000, g_system, N_OF(g_system)};
static const aipc_identity id_guest = {SID_GUEST, 3, 0x1000, g_guest, N_OF(g_guest)};

#endif
