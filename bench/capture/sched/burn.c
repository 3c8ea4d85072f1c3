// A busy loop duty-cycled to busy_us of every period_us (bench/capture/sched/ab.py).
// gcc -O2 -o burn burn.c; ./burn 4500 10000
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
static long now_us(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec*1000000L+t.tv_nsec/1000;}
int main(int c,char**v){long busy=atol(v[1]),period=atol(v[2]);
 for(;;){long s=now_us();while(now_us()-s<busy);usleep(period-busy);} }
