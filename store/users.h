/* users — the REST API's users (table api_user): a unique name, a role, a password kept only
 * as a PBKDF2 hash (core/passwd.h), and three times: created, changed and last login.
 *
 * changed_at moves whenever the password or the role changes. api/auth.c rejects a token
 * issued before it, so changing a password (or demoting a user) ends every session the
 * old one opened, without a token blacklist.
 *
 * Hashing takes ~0.3 s (600,000 PBKDF2 iterations) and is done before the transaction
 * starts: store_tx may run its function twice, and the write lock is not held while the
 * CPU grinds. Writing functions join the caller's transaction when there is one.
 *
 * Names: 1-64 characters from [A-Za-z0-9_.@-], compared exactly (case matters, as the
 * UNIQUE index on both engines has it). Roles are Airflow's four, stored by their
 * canonical spelling ("Admin", "Op", "User", "Viewer"); functions taking a role accept any
 * case. Passwords: 1-1024 bytes of UTF-8 text.
 *
 * Errors: 0 (or a count) on success, -1 with a one-line message in store_last_error(s).
 * Result structs own their strings; free them with their *_free function (accepts NULL). */
#ifndef GUST_STORE_USERS_H
#define GUST_STORE_USERS_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define STORE_USER_NAME_MAX 64
#define STORE_USER_PASSWORD_MAX 1024
/* For messages: the roles, most powerful first. */
#define STORE_USER_ROLES "Admin, Op, User, Viewer"

typedef struct StoreUser {
    int64_t id;
    char *username;
    char *role;          /* canonical: "Admin", "Op", "User" or "Viewer" */
    char *password_hash; /* filled by store_user_get only (NULL in lists): never print it */
    int64_t created_at;  /* us */
    int64_t changed_at;  /* us: creation, or the last change of password or role */
    int64_t last_login;  /* us; -1 when the user never logged in */
} StoreUser;

typedef struct StoreUserList {
    StoreUser *items; /* ordered by username (bytewise on both engines) */
    size_t n;
} StoreUserList;

/* The canonical spelling of a role name given in any case ("op" -> "Op"); NULL when it is
 * none of the four. The result is a static string. */
const char *store_user_role_canonical(const char *name);
/* 1 if name follows the rules above; 0 with why (may be NULL) saying what is wrong. */
int store_user_name_valid(const char *name, char *why, size_t whylen);

/* Create a user. *exists (may be NULL) gets 1 when the name is taken (the message says
 * "user 'NAME' already exists"); a bad name, role or password is also -1 with a message
 * naming the field. 0 / -1. */
int store_user_create(Store *s, const char *username, const char *password, const char *role, int *exists);
/* The user with its password hash, caller frees with store_user_free. NULL when missing
 * (*missing = 1, message "no user 'NAME'") or on failure (*missing = 0). missing may be NULL. */
StoreUser *store_user_get(Store *s, const char *username, int *missing);
void store_user_free(StoreUser *u);
/* Every user, without password hashes. 0 / -1; free with store_user_list_free. */
int store_user_list(Store *s, StoreUserList *out);
void store_user_list_free(StoreUserList *l);
/* How many users there are, or -1. */
int64_t store_user_count(Store *s);
/* 1 deleted, 0 no such user, -1 error. */
int store_user_delete(Store *s, const char *username);
/* Change the role (and changed_at, even when the role is the same: it is how an operator
 * ends a user's sessions). 1 changed, 0 no such user, -1 error. */
int store_user_set_role(Store *s, const char *username, const char *role);
/* Change the password (and changed_at). 1 changed, 0 no such user, -1 error. */
int store_user_set_password(Store *s, const char *username, const char *password);
/* Remember a successful login at `when` (us). 1 recorded, 0 no such user, -1 error. */
int store_user_record_login(Store *s, const char *username, int64_t when);

#endif
