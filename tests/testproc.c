#include "testproc.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

/* ---- running the CLI ------------------------------------------------------------- */

void child_start(child *c, const char *const *argv, const run_opts *o) {
    memset(c, 0, sizeof *c);
    int op[2] = {-1, -1}, ep[2];
    if (!o->stdout_to)
        assert_int_equal(pipe(op), 0);
    assert_int_equal(pipe(ep), 0);
    c->pid = fork();
    assert_true(c->pid >= 0);
    if (c->pid == 0) {
        int fd = o->stdout_to ? open(o->stdout_to, O_WRONLY | O_CREAT | O_TRUNC, 0644) : op[1];
        dup2(fd, 1);
        dup2(ep[1], 2);
        signal(SIGXFSZ, o->xfsz_kills ? SIG_DFL : SIG_IGN);
        signal(SIGPIPE, SIG_DFL);
        if (o->fsize) {
            struct rlimit rl = {(rlim_t)o->fsize, (rlim_t)o->fsize};
            setrlimit(RLIMIT_FSIZE, &rl);
        }
        setenv("OMP_NUM_THREADS", "1", 1);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    if (!o->stdout_to)
        close(op[1]);
    close(ep[1]);
    c->out = op[0];
    c->err = ep[0];
    c->obuf = calloc(1, 1);
    c->ebuf = calloc(1, 1);
}

int child_read(child *c, int ms) {
    struct pollfd p[2] = {{c->out, POLLIN, 0}, {c->err, POLLIN, 0}};
    if (c->out < 0 && c->err < 0)
        return 0;
    if (poll(p, 2, ms) <= 0)
        return 1;
    for (int k = 0; k < 2; k++) {
        int *fd = k ? &c->err : &c->out;
        if (*fd < 0 || !(p[k].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        char buf[8192];
        ssize_t n = read(*fd, buf, sizeof buf);
        if (n <= 0) {
            close(*fd);
            *fd = -1;
            continue;
        }
        char **b = k ? &c->ebuf : &c->obuf;
        size_t *len = k ? &c->en : &c->on;
        *b = realloc(*b, *len + (size_t)n + 1);
        memcpy(*b + *len, buf, (size_t)n);
        *len += (size_t)n;
        (*b)[*len] = 0;
    }
    return 1;
}

int child_wait(child *c) {
    time_t t0 = time(NULL);
    while (child_read(c, 200))
        if (time(NULL) - t0 > 300)
            kill(c->pid, SIGKILL);
    int st;
    assert_int_equal(waitpid(c->pid, &st, 0), c->pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

void child_free(child *c) {
    free(c->obuf);
    free(c->ebuf);
}

int cli(const char *const *args, const run_opts *o, char **out, char **err) {
    const char *argv[64] = {OC_CLI_PATH};
    size_t n = 1;
    while (args[n - 1] && n < 63) {
        argv[n] = args[n - 1];
        n++;
    }
    argv[n] = NULL;
    run_opts none = {0, 0, NULL};
    child c;
    child_start(&c, argv, o ? o : &none);
    int rc = child_wait(&c);
    if (out)
        *out = c.obuf;
    else
        free(c.obuf);
    if (err)
        *err = c.ebuf;
    else
        free(c.ebuf);
    return rc;
}

