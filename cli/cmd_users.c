/* cmd_users — `gust users create|list|delete|set-role|set-password`, the REST API's users,
 * mirroring `airflow users`; and the first-start admin of `gust standalone`.
 *
 * Passwords are taken from --password or, better (a command line is visible to every
 * user of the machine in ps), from one line of stdin with --password-stdin. They are never
 * printed, logged or written to the event log; list shows no hash. Every change leaves an
 * event-log row "cli_users_<verb>" with owner "cli:$USER", as the other store commands do.
 *
 * Exit codes: 0 ok, 1 failure (one line on stderr naming what failed), 2 usage error. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cli/cli.h"
#include "cli/cmd_store.h"
#include "core/passwd.h"
#include "core/timeutil.h"
#include "core/util.h"
#include "store/store.h"
#include "store/users.h"
#include "store/xcom.h"

static const char users_usage[] =
    "usage: gust users create --username U --role R (--password P | --password-stdin)\n"
    "                                             create an API user\n"
    "       gust users list [--output json]       every user: name, role, created, last login\n"
    "       gust users delete --username U        delete a user (its tokens stop working)\n"
    "       gust users set-role --username U --role R\n"
    "                                             change a user's role (ends its sessions)\n"
    "       gust users set-password --username U (--password P | --password-stdin)\n"
    "                                             change a password (ends its sessions)\n"
    "\n"
    "Roles, most powerful first (any case): Admin (also manages users), Op (also variables,\n"
    "connections, pools), User (also triggers, clears, pauses, marks states), Viewer (reads).\n"
    "Usernames: 1-64 characters from letters, digits and _ . @ -\n"
    "--password-stdin reads the password from the first line of stdin: prefer it to --password,\n"
    "which other users of this machine can see in the process list.\n";

typedef struct UsersArgs {
    const char *cmd;      /* "users create", for messages */
    const char *username; /* --username / -u */
    const char *password; /* --password / -p */
    const char *role;     /* --role / -r */
    int password_stdin;   /* --password-stdin */
    int json;             /* --output json */
    int help;
} UsersArgs;

/* Parse argv[2..): 0, or 2 after printing a usage error. */
static int parse(const char *cmd, int argc, char **argv, UsersArgs *a)
{
    memset(a, 0, sizeof *a);
    a->cmd = cmd;
    for (int i = 2; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            a->help = 1;
            continue;
        }
        if (strcmp(arg, "--password-stdin") == 0) {
            a->password_stdin = 1;
            continue;
        }
        int o = cli_output_json(argc, argv, &i);
        if (o < 0) {
            fprintf(stderr, "gust %s: --output takes json or text\n", cmd);
            return 2;
        }
        if (o) {
            a->json = o == 1;
            continue;
        }
        static const struct {
            const char *longname, *shortname;
            size_t off;
        } opts[] = {
            {"username", "-u", offsetof(UsersArgs, username)},
            {"password", "-p", offsetof(UsersArgs, password)},
            {"role", "-r", offsetof(UsersArgs, role)},
        };
        int found = -1;
        const char *val = NULL;
        for (int k = 0; k < 3 && found < 0; k++) {
            size_t n = strlen(opts[k].longname);
            if (strcmp(arg, opts[k].shortname) == 0 ||
                (strncmp(arg, "--", 2) == 0 && strncmp(arg + 2, opts[k].longname, n) == 0 && arg[2 + n] == 0)) {
                found = k;
                val = i + 1 < argc ? argv[++i] : NULL;
            } else if (strncmp(arg, "--", 2) == 0 && strncmp(arg + 2, opts[k].longname, n) == 0 && arg[2 + n] == '=') {
                found = k;
                val = arg + 3 + n;
            }
        }
        if (found < 0) {
            fprintf(stderr, "gust %s: unknown %s '%s'\n", cmd, arg[0] == '-' ? "option" : "argument", arg);
            return 2;
        }
        if (!val) {
            fprintf(stderr, "gust %s: --%s needs a value\n", cmd, opts[found].longname);
            return 2;
        }
        *(const char **)((char *)a + opts[found].off) = val;
    }
    return 0;
}

/* The options a verb needs (1) and refuses (0): 0, or 2 after naming the one at fault. */
static int need(const UsersArgs *a, int username, int role, int password)
{
    const char *missing = NULL, *extra = NULL;
    if (username && !a->username) missing = "--username";
    else if (role && !a->role) missing = "--role";
    else if (password && !a->password && !a->password_stdin) missing = "--password or --password-stdin";
    else if (!username && a->username) extra = "--username";
    else if (!role && a->role) extra = "--role";
    else if (!password && (a->password || a->password_stdin)) extra = "a password";
    if (missing) {
        fprintf(stderr, "gust %s: %s is required\n%s", a->cmd, missing, users_usage);
        return 2;
    }
    if (extra) {
        fprintf(stderr, "gust %s: takes no %s\n", a->cmd, extra);
        return 2;
    }
    if (a->password && a->password_stdin) {
        fprintf(stderr, "gust %s: give --password or --password-stdin, not both\n", a->cmd);
        return 2;
    }
    return 0;
}

/* The password from --password, or the first line of stdin (without its newline). Heap,
 * caller wipes and frees; NULL after printing why. */
static char *read_password(const UsersArgs *a)
{
    if (!a->password_stdin) return xstrdup(a->password);
    char buf[STORE_USER_PASSWORD_MAX + 2];
    if (!fgets(buf, sizeof buf, stdin)) {
        fprintf(stderr, "gust %s: --password-stdin: nothing on stdin\n", a->cmd);
        return NULL;
    }
    size_t n = strlen(buf);
    if (n && buf[n - 1] != '\n' && !feof(stdin)) {
        OPENSSL_cleanse(buf, sizeof buf);
        fprintf(stderr, "gust %s: --password-stdin: password is longer than %d bytes\n", a->cmd,
                STORE_USER_PASSWORD_MAX);
        return NULL;
    }
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) buf[--n] = 0;
    char *p = xstrdup(buf);
    OPENSSL_cleanse(buf, sizeof buf);
    return p;
}

static void wipe(char *p)
{
    if (!p) return;
    OPENSSL_cleanse(p, strlen(p));
    free(p);
}

/* Who runs this command, for the event log: $USER, else the account's name. */
static const char *os_user(void)
{
    const char *u = getenv("USER");
    if (u && *u) return u;
    struct passwd *pw = getpwuid(geteuid());
    return pw && pw->pw_name ? pw->pw_name : "unknown";
}

/* Event-log row for a change; a failure to write it is reported but does not fail the
 * command (the change is made). */
static void audit(Store *s, const char *cmd, const char *verb, const char *username, const char *role)
{
    char *owner = xasprintf("cli:%s", os_user());
    char *event = xasprintf("cli_users_%s", verb);
    for (char *p = event; *p; p++)
        if (*p == '-') *p = '_';
    cJSON *x = cJSON_CreateObject();
    cJSON_AddStringToObject(x, "username", username);
    if (role) cJSON_AddStringToObject(x, "role", role);
    char *extra = cJSON_PrintUnformatted(x);
    cJSON_Delete(x);
    StoreEvent e;
    memset(&e, 0, sizeof e);
    e.event = event;
    e.owner = owner;
    e.map_index = -1;
    e.extra = extra;
    if (store_event_append(s, &e, NULL) != 0)
        fprintf(stderr, "gust %s: warning: could not record the change in the event log: %s\n", cmd,
                store_last_error(s));
    free(owner);
    free(event);
    free(extra);
}

static void add_time(cJSON *o, const char *name, int64_t us)
{
    if (us < 0) {
        cJSON_AddNullToObject(o, name);
        return;
    }
    char buf[40];
    time_format_iso(us, 1, buf, sizeof buf);
    cJSON_AddStringToObject(o, name, buf);
}

static int users_list(Store *s, const UsersArgs *a)
{
    StoreUserList l;
    if (store_user_list(s, &l) != 0) {
        fprintf(stderr, "gust %s: %s\n", a->cmd, store_last_error(s));
        return 1;
    }
    if (a->json) {
        cJSON *o = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(o, "users");
        for (size_t i = 0; i < l.n; i++) {
            cJSON *u = cJSON_CreateObject();
            cJSON_AddStringToObject(u, "username", l.items[i].username);
            cJSON_AddStringToObject(u, "role", l.items[i].role);
            add_time(u, "created_at", l.items[i].created_at);
            add_time(u, "changed_at", l.items[i].changed_at);
            add_time(u, "last_login", l.items[i].last_login);
            cJSON_AddItemToArray(arr, u);
        }
        char *text = cJSON_Print(o);
        puts(text);
        free(text);
        cJSON_Delete(o);
    } else {
        size_t w = strlen("username");
        for (size_t i = 0; i < l.n; i++)
            if (strlen(l.items[i].username) > w) w = strlen(l.items[i].username);
        printf("%-*s  %-6s  %-20s  %s\n", (int)w, "username", "role", "created", "last login");
        for (size_t i = 0; i < l.n; i++) {
            char created[40], last[40] = "never";
            time_format_iso(l.items[i].created_at, 0, created, sizeof created);
            if (l.items[i].last_login >= 0) time_format_iso(l.items[i].last_login, 0, last, sizeof last);
            printf("%-*s  %-6s  %-20s  %s\n", (int)w, l.items[i].username, l.items[i].role, created, last);
        }
    }
    store_user_list_free(&l);
    return 0;
}

int cmd_users(GustConfig *cfg, int argc, char **argv)
{
    const char *verb = argc > 1 ? argv[1] : NULL;
    if (!verb || strcmp(verb, "--help") == 0 || strcmp(verb, "-h") == 0 || strcmp(verb, "help") == 0) {
        fputs(users_usage, verb ? stdout : stderr);
        return verb ? 0 : 2;
    }
    static const char *const verbs[] = {"create", "list", "delete", "set-role", "set-password"};
    int v = -1;
    for (int i = 0; i < 5; i++)
        if (strcmp(verb, verbs[i]) == 0) v = i;
    if (v < 0) {
        fputs(users_usage, stderr);
        fprintf(stderr, "gust users: unknown subcommand '%s'\n", verb);
        return 2;
    }
    char cmd[32];
    snprintf(cmd, sizeof cmd, "users %s", verb);
    UsersArgs a;
    int rc = parse(cmd, argc, argv, &a);
    if (rc) return rc;
    if (a.help) return fputs(users_usage, stdout), 0;
    /* which options each verb takes: username, role, password */
    static const int want[5][3] = {{1, 1, 1}, {0, 0, 0}, {1, 0, 0}, {1, 1, 0}, {1, 0, 1}};
    if ((rc = need(&a, want[v][0], want[v][1], want[v][2])) != 0) return rc;
    if (v != 1 && a.json) {
        fprintf(stderr, "gust %s: takes no --output\n", cmd);
        return 2;
    }
    /* check what can be checked before the store is opened (and before a password is read) */
    const char *role = NULL;
    if (want[v][1] && !(role = store_user_role_canonical(a.role))) {
        fprintf(stderr, "gust %s: role '%s' is not one of %s\n", cmd, a.role, STORE_USER_ROLES);
        return 1;
    }
    char why[128];
    if (want[v][0] && !store_user_name_valid(a.username, why, sizeof why)) {
        fprintf(stderr, "gust %s: %s\n", cmd, why);
        return 1;
    }
    char *password = NULL;
    if (want[v][2] && !(password = read_password(&a))) return 1;

    Store *s = cli_open_store(cfg, cmd, 1);
    if (!s) {
        wipe(password);
        return 1;
    }
    rc = 0;
    int r;
    switch (v) {
    case 0: {
        int exists = 0;
        if (store_user_create(s, a.username, password, role, &exists) != 0) {
            fprintf(stderr, "gust %s: %s\n", cmd, store_last_error(s));
            rc = 1;
        } else {
            printf("User %s created with role %s\n", a.username, role);
            audit(s, cmd, verb, a.username, role);
        }
        break;
    }
    case 1:
        rc = users_list(s, &a);
        break;
    case 2:
        r = store_user_delete(s, a.username);
        if (r != 1) {
            fprintf(stderr, "gust %s: %s\n", cmd, store_last_error(s));
            rc = 1;
        } else {
            printf("User %s deleted\n", a.username);
            audit(s, cmd, verb, a.username, NULL);
        }
        break;
    case 3:
        r = store_user_set_role(s, a.username, role);
        if (r != 1) {
            fprintf(stderr, "gust %s: %s\n", cmd, store_last_error(s));
            rc = 1;
        } else {
            printf("User %s now has role %s\n", a.username, role);
            audit(s, cmd, verb, a.username, role);
        }
        break;
    default:
        r = store_user_set_password(s, a.username, password);
        if (r != 1) {
            fprintf(stderr, "gust %s: %s\n", cmd, store_last_error(s));
            rc = 1;
        } else {
            printf("Password of user %s changed\n", a.username);
            audit(s, cmd, verb, a.username, NULL);
        }
        break;
    }
    wipe(password);
    store_free(s);
    return rc;
}

/* ---- gust standalone's first admin --------------------------------------------------------- */

/* Write text to path, mode 0600, replacing what is there but never following a symlink
 * planted in its place. 0, or -1 with errno. */
static int write_private(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return -1;
    size_t n = strlen(text), done = 0;
    int rc = fchmod(fd, 0600);
    while (rc == 0 && done < n) {
        ssize_t w = write(fd, text + done, n - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) rc = -1;
        else done += (size_t)w;
    }
    int e = errno;
    if (close(fd) != 0 && rc == 0) rc = -1, e = errno;
    errno = e;
    return rc;
}

int cli_users_standalone_admin(GustConfig *cfg, struct Store *s)
{
    int64_t n = store_user_count(s);
    if (n < 0) {
        fprintf(stderr, "gust standalone: cannot count the API users: %s\n", store_last_error(s));
        return -1;
    }
    if (n > 0) return 0;
    const char *home = config_get(cfg, "core.home");
    if (!home || !*home) home = ".";
    if (mkdir(home, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "gust standalone: cannot create core.home %s: %s\n", home, strerror(errno));
        return -1;
    }
    char *pw = passwd_random(16);
    if (!pw) {
        fprintf(stderr, "gust standalone: cannot make a random password (OpenSSL has no randomness)\n");
        return -1;
    }
    /* The file is written under a temporary name first and renamed only once the user
     * exists: a failure leaves neither a user whose password nobody has nor a file naming
     * a password that was never set. */
    char *path = xasprintf("%s/standalone_admin_password.txt", home);
    char *tmp = xasprintf("%s.%ld.tmp", path, (long)getpid());
    char *line = xasprintf("%s\n", pw);
    int rc = -1, exists = 0;
    if (write_private(tmp, line) != 0) {
        fprintf(stderr, "gust standalone: cannot write %s: %s\n", tmp, strerror(errno));
    } else if (store_user_create(s, "admin", pw, "Admin", &exists) != 0) {
        if (exists) rc = 0; /* another process made it first: its password stands */
        else fprintf(stderr, "gust standalone: cannot create user admin: %s\n", store_last_error(s));
        unlink(tmp);
    } else if (rename(tmp, path) != 0) {
        /* the user exists: say its password here at least, the only place left */
        fprintf(stderr, "gust standalone: cannot rename %s to %s: %s\n", tmp, path, strerror(errno));
        printf("gust standalone: created user admin with password %s\n", pw);
        unlink(tmp);
        rc = 0;
    } else {
        printf("gust standalone: created user admin with password %s (also in %s)\n", pw, path);
        rc = 0;
    }
    fflush(stdout);
    wipe(line);
    wipe(pw);
    free(path);
    free(tmp);
    return rc;
}
